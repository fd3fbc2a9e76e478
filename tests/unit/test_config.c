/* Config loader tests: the SPEC §5 example, defaults, one table of configs
 * that must be rejected with an exact "FILE:LINE: KEY: message", secrets kept
 * out of messages, the zero-config default under several environments, and
 * config generations (refcounts, the settings a reload keeps). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/gen.h"

/* Every variable the loader or these tests read, cleared before each test so
 * the developer's own environment cannot leak in. */
static const char *const env_vars[] = {
    "YOUROUTER_LISTEN", "YOUROUTER_MASTER_KEY", "YOUROUTER_DB_URL",   "OPENAI_API_KEY",
    "OPENAI_BASE_URL",  "ANTHROPIC_API_KEY",    "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
    "GEMINI_BASE_URL",  "YR_TEST_UNSET",        "YR_TEST_KIND",       "YR_TEST_SECRET",
    "YR_TEST_EMPTY",    "YR_TEST_PORT",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    return 0;
}

static yr_config_t *load_ok(const char *yaml)
{
    yr_config_t *cfg = NULL;
    char err[512] = "";
    int rc = yr_config_load_string("cfg.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* Loads yaml expecting failure; returns the message in err. */
static void load_fail(const char *yaml, char *err, size_t errlen)
{
    yr_config_t *cfg = (yr_config_t *)1;
    int rc = yr_config_load_string("cfg.yaml", yaml, strlen(yaml), &cfg, err, errlen);
    assert_true(rc < 0);
    assert_null(cfg);
}

static const char spec_example[] =
    "server:\n"
    "  listen: 127.0.0.1:8080\n"
    "  master_key: ${YOUROUTER_MASTER_KEY}    # ${VAR} is read from the environment\n"
    "\n"
    "storage:\n"
    "  url: sqlite://yourouter.db              # or postgres://user@host/db\n"
    "  # redis_url: redis://127.0.0.1:6379     # shared limits across instances\n"
    "\n"
    "providers:                                # each key is a vendor name\n"
    "  openai:\n"
    "    kind: openai\n"
    "    base_url: https://api.openai.com/v1\n"
    "    api_key: ${OPENAI_API_KEY}\n"
    "  anthropic:\n"
    "    kind: anthropic\n"
    "    base_url: https://api.anthropic.com\n"
    "    api_key: ${ANTHROPIC_API_KEY}\n"
    "  google:\n"
    "    kind: gemini\n"
    "    base_url: https://generativelanguage.googleapis.com\n"
    "    api_key: ${GEMINI_API_KEY}\n"
    "\n"
    "models:\n"
    "  - id: gpt-4o\n"
    "    routes:\n"
    "      - provider: openai                  # upstream model defaults to id\n"
    "  - id: claude-sonnet-4-20250514\n"
    "    routes:\n"
    "      - provider: anthropic\n"
    "  - id: fast-chat                         # an alias served by two vendors\n"
    "    routes:\n"
    "      - provider: anthropic\n"
    "        model: claude-3-5-haiku-latest\n"
    "      - provider: openai\n"
    "        model: gpt-4o-mini\n";

static void test_spec_example(void **state)
{
    (void)state;
    setenv("YOUROUTER_MASTER_KEY", "yr-master", 1);
    setenv("OPENAI_API_KEY", "sk-openai", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant", 1);
    setenv("GEMINI_API_KEY", "gm-key", 1);
    yr_config_t *cfg = load_ok(spec_example);

    assert_string_equal(cfg->path, "cfg.yaml");
    assert_string_equal(cfg->server.listen_host, "127.0.0.1");
    assert_int_equal(cfg->server.listen_port, 8080);
    assert_string_equal(cfg->server.master_key, "yr-master");
    assert_string_equal(cfg->storage.url, "sqlite://yourouter.db");
    assert_null(cfg->storage.redis_url);

    assert_int_equal(cfg->nproviders, 3);
    const yr_provider_conf_t *oa = yr_config_provider(cfg, YR_STR("openai"));
    const yr_provider_conf_t *an = yr_config_provider(cfg, YR_STR("anthropic"));
    const yr_provider_conf_t *gg = yr_config_provider(cfg, YR_STR("google"));
    assert_non_null(oa);
    assert_non_null(an);
    assert_non_null(gg);
    assert_null(yr_config_provider(cfg, YR_STR("azure")));
    assert_int_equal(oa->kind, YR_KIND_OPENAI);
    assert_int_equal(an->kind, YR_KIND_ANTHROPIC);
    assert_int_equal(gg->kind, YR_KIND_GEMINI);
    assert_int_equal(oa->index, 0);
    assert_int_equal(gg->index, 2);
    assert_string_equal(oa->base_url, "https://api.openai.com/v1");
    assert_string_equal(gg->base_url, "https://generativelanguage.googleapis.com");
    assert_string_equal(oa->api_key, "sk-openai");
    assert_string_equal(an->api_key, "sk-ant");
    assert_string_equal(gg->api_key, "gm-key");
    assert_int_equal(oa->connect_timeout_ms, 5000);
    assert_int_equal(oa->first_byte_timeout_ms, 120000);
    assert_int_equal(oa->idle_timeout_ms, 30000);
    assert_int_equal(oa->timeout_ms, 600000);

    assert_int_equal(cfg->nmodels, 3);
    const yr_model_conf_t *m = yr_config_model(cfg, YR_STR("gpt-4o"));
    assert_non_null(m);
    assert_int_equal(m->index, 0);
    assert_int_equal(m->nroutes, 1);
    assert_ptr_equal(m->routes[0].provider, oa);
    assert_string_equal(m->routes[0].model, "gpt-4o");

    m = yr_config_model(cfg, YR_STR("fast-chat"));
    assert_non_null(m);
    assert_int_equal(m->index, 2);
    assert_int_equal(m->nroutes, 2);
    assert_ptr_equal(m->routes[0].provider, an);
    assert_string_equal(m->routes[0].model, "claude-3-5-haiku-latest");
    assert_ptr_equal(m->routes[1].provider, oa);
    assert_string_equal(m->routes[1].model, "gpt-4o-mini");
    assert_null(yr_config_model(cfg, YR_STR("gpt-4")));
    yr_config_free(cfg);
}

static void test_defaults_applied(void **state)
{
    (void)state;
    static const char *const docs[] = {"", "# nothing but a comment\n", "~\n", "server:\n",
                                       "server: {}\nstorage:\nproviders: {}\nmodels: []\n"};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t workers = ncpu < 1 ? 1 : ncpu > 256 ? 256 : (uint32_t)ncpu;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        yr_config_t *cfg = load_ok(docs[i]);
        assert_string_equal(cfg->server.listen_host, "127.0.0.1");
        assert_int_equal(cfg->server.listen_port, 8080);
        assert_null(cfg->server.master_key);
        assert_int_equal(cfg->server.workers, workers);
        assert_int_equal(cfg->server.max_body_bytes, 32u << 20);
        assert_int_equal(cfg->server.shutdown_timeout_ms, 30000);
        assert_int_equal(cfg->server.idle_timeout_ms, 60000);
        assert_string_equal(cfg->server.log_level, "info");
        assert_string_equal(cfg->storage.url, "sqlite://yourouter.db");
        assert_null(cfg->storage.redis_url);
        assert_int_equal(cfg->nproviders, 0);
        assert_int_equal(cfg->nmodels, 0);
        yr_config_free(cfg);
    }
}

static void test_every_setting(void **state)
{
    (void)state;
    setenv("YR_TEST_PORT", "9090", 1);
    setenv("YR_TEST_EMPTY", "", 1);
    yr_config_t *cfg = load_ok("server:\n"
                               "  listen: '[::1]:${YR_TEST_PORT}'\n"
                               "  master_key: pa$$word$x\n"
                               "  workers: 3\n"
                               "  max_body_bytes: 64MiB\n"
                               "  shutdown_timeout_ms: 0\n"
                               "  idle_timeout_ms: 1000\n"
                               "  log_level: debug\n"
                               "storage:\n"
                               "  url: postgresql://yr@db.internal/yourouter\n"
                               "  redis_url: redis://127.0.0.1:6379/0\n"
                               "providers:\n"
                               "  local-vllm_1:\n"
                               "    kind: openai\n"
                               "    base_url: http://127.0.0.1:8000/v1///\n"
                               "    api_key: ${YR_TEST_EMPTY}\n"
                               "    connect_timeout_ms: 1\n"
                               "    idle_timeout_ms: 1500\n"
                               "    first_byte_timeout_ms: 2000\n"
                               "    timeout_ms: 3000\n"
                               "  claude:\n"
                               "    kind: anthropic\n"
                               "    api_key: ${YR_TEST_UNSET:-sk-default}\n"
                               "  az: {kind: azure, base_url: 'https://x.openai.azure.com/'}\n"
                               "models:\n"
                               "  - id: m\n"
                               "    routes: [{provider: claude}, {provider: az}, "
                               "{provider: local-vllm_1, model: Qwen/Qwen3-8B}]\n");
    assert_string_equal(cfg->server.listen_host, "::1");
    assert_int_equal(cfg->server.listen_port, 9090);
    assert_string_equal(cfg->server.master_key, "pa$word$x");
    assert_int_equal(cfg->server.workers, 3);
    assert_int_equal(cfg->server.max_body_bytes, 64u << 20);
    assert_int_equal(cfg->server.shutdown_timeout_ms, 0);
    assert_int_equal(cfg->server.idle_timeout_ms, 1000);
    assert_string_equal(cfg->server.log_level, "debug");
    assert_string_equal(cfg->storage.url, "postgresql://yr@db.internal/yourouter");
    assert_string_equal(cfg->storage.redis_url, "redis://127.0.0.1:6379/0");

    const yr_provider_conf_t *local = &cfg->providers[0];
    assert_string_equal(local->name, "local-vllm_1");
    assert_string_equal(local->base_url, "http://127.0.0.1:8000/v1");
    assert_null(local->api_key);
    assert_int_equal(local->connect_timeout_ms, 1);
    assert_int_equal(local->first_byte_timeout_ms, 2000);
    assert_int_equal(local->idle_timeout_ms, 1500);
    assert_int_equal(local->timeout_ms, 3000);
    const yr_provider_conf_t *claude = &cfg->providers[1];
    assert_string_equal(claude->base_url, "https://api.anthropic.com"); /* kind default */
    assert_string_equal(claude->api_key, "sk-default");
    assert_string_equal(cfg->providers[2].base_url, "https://x.openai.azure.com");
    assert_int_equal(cfg->providers[2].kind, YR_KIND_AZURE);

    assert_int_equal(cfg->models[0].nroutes, 3);
    assert_string_equal(cfg->models[0].routes[2].model, "Qwen/Qwen3-8B");
    assert_ptr_equal(cfg->models[0].routes[2].provider, local);
    yr_config_free(cfg);

    /* Other spellings of the same kinds of values. */
    static const struct {
        const char *yaml;
        const char *host;
        uint16_t port;
        uint64_t body;
    } forms[] = {
        {"server: {listen: 'localhost:0', max_body_bytes: 1k}", "127.0.0.1", 0, 1024},
        {"server: {listen: '0.0.0.0:65535', max_body_bytes: 1 GiB}", "0.0.0.0", 65535, 1u << 30},
        {"server: {listen: '[::]:80', max_body_bytes: '2048'}", "::", 80, 2048},
        {"server: {max_body_bytes: 3m}", "127.0.0.1", 8080, 3u << 20},
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        cfg = load_ok(forms[i].yaml);
        assert_string_equal(cfg->server.listen_host, forms[i].host);
        assert_int_equal(cfg->server.listen_port, forms[i].port);
        assert_int_equal(cfg->server.max_body_bytes, forms[i].body);
        yr_config_free(cfg);
    }
}

static void test_anchors(void **state)
{
    (void)state;
    yr_config_t *cfg = load_ok("providers:\n"
                               "  a: &p {kind: openai}\n"
                               "  b: *p\n"
                               "models:\n"
                               "  - id: x\n"
                               "    routes: &r [{provider: a}, {provider: b}]\n"
                               "  - id: y\n"
                               "    routes: *r\n");
    assert_int_equal(cfg->nproviders, 2);
    assert_int_equal(cfg->nmodels, 2);
    assert_string_equal(cfg->models[1].routes[1].provider->name, "b");
    assert_string_equal(cfg->models[1].routes[1].model, "y");
    yr_config_free(cfg);
}

/* Each config is rejected with a message that contains expect exactly. */
static const struct {
    const char *yaml;
    const char *expect;
} rejects[] = {
    /* unknown keys */
    {"server:\n  listen: 127.0.0.1:1\nlogging: 1\n",
     "cfg.yaml:3: logging: unknown key (expected one of server, storage, images, responses, observability, providers, models)"},
    {"server:\n  listen: 127.0.0.1:1\n  lissen: 1\n",
     "cfg.yaml:3: server.lissen: unknown key (expected one of listen, master_key, workers, "
     "max_body_bytes, shutdown_timeout_ms, idle_timeout_ms, linger_ms, header_timeout_ms, "
     "body_timeout_ms, body_min_rate, max_body_memory, max_translation_memory, max_connections, log_level, trust_forwarded_proto, ui_session_ttl_s, upstream_engine)"},
    {"providers:\n  openai:\n    kind: openai\n    api_kee: x\n",
     "cfg.yaml:4: providers.openai.api_kee: unknown key (expected one of kind, preset, models, tls, "
     "base_url, api_key, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, timeout_ms, "
     "anthropic_version, default_max_tokens, inline_images, api_version, region, aws_access_key_id, "
     "aws_secret_access_key, aws_session_token, aws_profile, aws_credentials_file, project, location, "
     "publisher, credentials_file, credentials_json, responses)"},
    {"providers: {a: {kind: openai}}\nmodels:\n  - id: m\n    routes:\n      - provider: a\n"
     "        wieght: 2\n",
     "cfg.yaml:6: models[0].routes[0].wieght: unknown key (expected one of provider, model, "
     "price, api_key, weight, max_concurrency, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, timeout_ms)"},
    {"providers: {a: {kind: openai}}\nmodels:\n  - id: m\n    strategy: fastest\n"
     "    routes:\n      - provider: a\n",
     "cfg.yaml:4: models[0].strategy: unknown strategy 'fastest': one of priority, weighted, "
     "least-latency, least-busy"},
    {"providers: {a: {kind: openai}}\nmodels:\n  - id: m\n    retry_on: [429, 418]\n"
     "    routes:\n      - provider: a\n",
     "cfg.yaml:4: models[0].retry_on[1]: unknown retry condition '418'"},
    {"providers: {a: {kind: openai, api_key: k1}}\nmodels:\n  - id: m\n    routes:\n"
     "      - provider: a\n      - provider: a\n        api_key: k1\n",
     "cfg.yaml:6: models[0].routes[1]: duplicate route: same provider, model and key as routes[0]"},
    {"server:\n  workers: 1\n  workers: 2\n",
     "cfg.yaml:3: server.workers: duplicate key (first at line 2)"},
    {"providers:\n  a: {kind: openai}\n  a: {kind: gemini}\n",
     "cfg.yaml:3: providers.a: duplicate provider (first at line 2)"},
    {"server: {}\nserver: {}\n", "cfg.yaml:2: server: duplicate key (first at line 1)"},
    {"? [a]\n: 1\n", "cfg.yaml:1: (top level): expected a scalar as the key, got a sequence"},

    /* provider kinds and URLs */
    {"providers:\n  openai:\n    kind: foo\n",
     "cfg.yaml:3: providers.openai.kind: unknown kind 'foo' (expected one of openai, "
     "anthropic, gemini, azure, bedrock, vertex)"},
    {"providers:\n  p:\n    base_url: http://x\n",
     "cfg.yaml:3: providers.p.kind: required key is missing"},
    {"providers:\n  p:\n", "cfg.yaml:2: providers.p.kind: required key is missing"},
    {"providers:\n  p:\n    kind:\n", "cfg.yaml:3: providers.p.kind: required value is empty"},
    {"providers:\n  az:\n    kind: azure\n",
     "cfg.yaml:3: providers.az.base_url: required key is missing (kind azure has no default)"},
    /* kind azure: api_version is v1 or a date; base_url is the resource */
    {"providers:\n  az:\n    kind: azure\n    base_url: https://x.openai.azure.com\n"
     "    api_version: 2024-13-01\n",
     "cfg.yaml:5: providers.az.api_version: expected v1 or a dated version such as 2024-10-21 "
     "or 2025-04-01-preview"},
    {"providers:\n  az:\n    kind: azure\n    base_url: https://x.openai.azure.com\n"
     "    api_version: v2\n",
     "cfg.yaml:5: providers.az.api_version: expected v1 or a dated version"},
    {"providers:\n  az:\n    kind: azure\n    api_version: 2024-10-21-beta\n"
     "    base_url: https://x.openai.azure.com\n",
     "cfg.yaml:4: providers.az.api_version: expected v1 or a dated version"},
    {"providers:\n  az:\n    kind: azure\n    api_version: '2024-1-21'\n"
     "    base_url: https://x.openai.azure.com\n",
     "cfg.yaml:4: providers.az.api_version: expected v1 or a dated version"},
    {"providers:\n  az:\n    kind: azure\n    api_version: 2024-10-00\n"
     "    base_url: https://x.openai.azure.com\n",
     "cfg.yaml:4: providers.az.api_version: expected v1 or a dated version"},
    {"providers:\n  az:\n    kind: azure\n\n    base_url: https://x.openai.azure.com/openai/v1\n",
     "cfg.yaml:5: providers.az.base_url: kind azure wants the resource endpoint "
     "(https://NAME.openai.azure.com) without /openai/..."},
    {"providers:\n  az:\n    kind: azure\n"
     "    base_url: https://x.openai.azure.com/openai/deployments/gpt-4o/\n",
     "cfg.yaml:4: providers.az.base_url: kind azure wants the resource endpoint"},
    /* tls.ca_file must be a readable PEM file */
    {"providers:\n  p:\n    kind: openai\n    tls:\n      ca_file: /nonexistent/ca.pem\n",
     "cfg.yaml:5: providers.p.tls.ca_file: cannot read the CA file: No such file or directory"},
    {"providers:\n  p:\n    kind: openai\n    tls:\n      ca_file: /dev/null\n",
     "cfg.yaml:5: providers.p.tls.ca_file: the CA file is not a regular file"},
    {"providers:\n  p:\n    kind: openai\n    tls:\n      cafile: x\n",
     "cfg.yaml:5: providers.p.tls.cafile: unknown key (expected one of ca_file, http2)"},
    {"providers:\n  p:\n    kind: openai\n    tls: /etc/ssl/ca.pem\n",
     "cfg.yaml:4: providers.p.tls: expected a mapping"},
    {"providers:\n  p:\n    kind: openai\n    base_url: ftp://x\n",
     "cfg.yaml:4: providers.p.base_url: must start with http:// or https://"},
    {"providers:\n  p:\n    kind: openai\n    base_url: https://\n",
     "cfg.yaml:4: providers.p.base_url: has no host"},
    {"providers:\n  p:\n    kind: openai\n    base_url: https://h/v1?x=1\n",
     "cfg.yaml:4: providers.p.base_url: must not contain a query string or fragment"},
    {"providers:\n  p:\n    kind: openai\n    base_url: ''\n",
     "cfg.yaml:4: providers.p.base_url: must not be empty"},
    {"providers:\n  Open AI:\n    kind: openai\n",
     "cfg.yaml:2: providers.Open AI: invalid provider name (expected 1 to 64 characters of "
     "a-z, 0-9, '_' and '-')"},
    {"providers:\n  p:\n    kind: openai\n    timeout_ms: 0\n",
     "cfg.yaml:4: providers.p.timeout_ms: value '0' is out of range (1..86400000)"},
    {"providers:\n  p:\n    kind: openai\n    connect_timeout_ms: 600001\n",
     "cfg.yaml:4: providers.p.connect_timeout_ms: value '600001' is out of range (1..600000)"},
    {"providers:\n  - openai\n",
     "cfg.yaml:2: providers: expected a mapping of provider name to settings, got a sequence"},

    /* server */
    {"server:\n  listen: nowhere\n",
     "cfg.yaml:2: server.listen: invalid listen address 'nowhere': expected HOST:PORT, "
     "e.g. 127.0.0.1:8080"},
    {"server:\n  listen: example.com:80\n",
     "cfg.yaml:2: server.listen: invalid listen address 'example.com:80': expected an IPv4 "
     "address or localhost before ':'"},
    {"server:\n  listen: 127.0.0.1:70000\n",
     "cfg.yaml:2: server.listen: invalid listen address '127.0.0.1:70000': port out of range "
     "(0..65535)"},
    {"server:\n  listen: '127.0.0.1:'\n",
     "cfg.yaml:2: server.listen: invalid listen address '127.0.0.1:': the port must be a "
     "number (0..65535)"},
    {"server:\n  listen: '::1:80'\n",
     "cfg.yaml:2: server.listen: invalid listen address '::1:80': an IPv6 address must be in "
     "brackets, e.g. [::1]:8080"},
    {"server:\n  listen: '[::g]:80'\n",
     "cfg.yaml:2: server.listen: invalid listen address '[::g]:80': invalid IPv6 address"},
    {"server:\n  workers: 0\n", "cfg.yaml:2: server.workers: value '0' is out of range (1..256)"},
    {"server:\n  workers: 257\n", "cfg.yaml:2: server.workers: value '257' is out of range"},
    {"server:\n  workers: -1\n",
     "cfg.yaml:2: server.workers: value '-1' is not a non-negative integer"},
    {"server:\n  workers: 99999999999999999999999\n",
     "cfg.yaml:2: server.workers: value '99999999999999999999999' is out of range (1..256)"},
    {"server:\n  workers: 2.5\n", "cfg.yaml:2: server.workers: value '2.5' is not a"},
    {"server:\n  max_body_bytes: 512\n",
     "cfg.yaml:2: server.max_body_bytes: value '512' is out of range (1024..1073741824)"},
    {"server:\n  max_body_bytes: 2g\n",
     "cfg.yaml:2: server.max_body_bytes: value '2g' is out of range"},
    {"server:\n  max_body_bytes: 32XB\n",
     "cfg.yaml:2: server.max_body_bytes: value '32XB' is not a size (an integer, optionally "
     "followed by k, m, g, KiB, MiB or GiB)"},
    {"server:\n  max_body_bytes: 99999999999999999999g\n",
     "cfg.yaml:2: server.max_body_bytes: value '99999999999999999999g' is out of range"},
    {"server:\n  idle_timeout_ms: 999\n",
     "cfg.yaml:2: server.idle_timeout_ms: value '999' is out of range (1000..3600000)"},
    {"server:\n  shutdown_timeout_ms: 600001\n",
     "cfg.yaml:2: server.shutdown_timeout_ms: value '600001' is out of range (0..600000)"},
    {"server:\n  log_level: verbose\n",
     "cfg.yaml:2: server.log_level: unknown log_level 'verbose' (expected one of debug, info, "
     "warn, error, off)"},
    {"server:\n  listen:\n    host: x\n",
     "cfg.yaml:3: server.listen: expected a scalar, got a mapping"},
    {"server:\n  workers: [1, 2]\n",
     "cfg.yaml:2: server.workers: expected a scalar, got a sequence"},
    {"server: 5\n", "cfg.yaml:1: server: expected a mapping, got a scalar"},
    {"server: ''\n", "cfg.yaml:1: server: expected a mapping, got a scalar"},
    {"- a\n", "cfg.yaml:1: (top level): expected a mapping with server, storage, providers and "
              "models, got a sequence"},

    /* storage */
    {"storage:\n  url: mysql://db/x\n",
     "cfg.yaml:2: storage.url: unsupported scheme (expected sqlite://PATH, sqlite::memory:, "
     "postgres://... or postgresql://...)"},
    {"storage:\n  url: sqlite://\n",
     "cfg.yaml:2: storage.url: sqlite:// needs a file path, e.g. sqlite://yourouter.db"},
    {"storage:\n  redis_url: http://x\n",
     "cfg.yaml:2: storage.redis_url: must start with redis:// or rediss://"},

    /* models and routes */
    {"providers: {openai: {kind: openai}}\nmodels:\n  - id: a\n    routes: [{provider: openai}]\n"
     "  - id: b\n    routes:\n      - provider: x\n",
     "cfg.yaml:7: models[1].routes[0].provider: no provider named 'x'"},
    {"providers: {openai: {kind: openai}}\nmodels:\n  - id: a\n    routes: [{provider: openai}]\n"
     "  - id: b\n    routes: [{provider: openai}]\n  - id: a\n    routes: [{provider: openai}]\n",
     "cfg.yaml:7: models[2].id: duplicate model id (first defined at line 3)"},
    {"models:\n  - id: a\n", "cfg.yaml:2: models[0].routes: required key is missing"},
    {"models:\n  - id: a\n    routes:\n", "cfg.yaml:3: models[0].routes: required value is empty"},
    {"models:\n  - id: a\n    routes: []\n",
     "cfg.yaml:3: models[0].routes: must list at least one route"},
    {"models:\n  - id: a\n    routes: {provider: x}\n",
     "cfg.yaml:3: models[0].routes: expected a sequence of routes, got a mapping"},
    {"models:\n  - routes: [{provider: x}]\n", "cfg.yaml:2: models[0].id: required key is missing"},
    {"models:\n  - id:\n    routes: [{provider: x}]\n",
     "cfg.yaml:2: models[0].id: required value is empty"},
    {"models:\n  - id: ''\n    routes: [{provider: x}]\n",
     "cfg.yaml:2: models[0].id: must not be empty"},
    {"models:\n  -\n", "cfg.yaml:2: models[0]: expected a mapping with id and routes, got an "
                       "empty value"},
    {"models:\n  - id: a\n    routes: [x]\n",
     "cfg.yaml:3: models[0].routes[0]: expected a mapping with provider and model, got a scalar"},
    {"models:\n  - id: a\n    routes:\n      - model: m\n",
     "cfg.yaml:4: models[0].routes[0].provider: required key is missing"},
    {"models:\n  a: 1\n", "cfg.yaml:2: models: expected a sequence of models, got a mapping"},
    {"providers: {p: {kind: openai}}\nmodels:\n  - id: a\n    routes:\n      - provider: p\n"
     "      - provider: p\n        model: a\n",
     "cfg.yaml:6: models[0].routes[1]: duplicate route: same provider and model as routes[0]"},
    {"models:\n  - id: \"a\\nb\"\n    routes: [{provider: x}]\n",
     "cfg.yaml:2: models[0].id: must not contain control characters"},

    /* ${VAR} expansion */
    {"server:\n  master_key: ${YR_TEST_UNSET}\n",
     "cfg.yaml:2: server.master_key: environment variable 'YR_TEST_UNSET' is not set (write "
     "${YR_TEST_UNSET:-default} to give a default)"},
    {"server:\n  listen: ${YR_TEST_UNSET\n",
     "cfg.yaml:2: server.listen: unterminated '${' (expected '}')"},
    {"server:\n  listen: ${}\n",
     "cfg.yaml:2: server.listen: malformed '${': expected ${NAME} or ${NAME:-default}"},
    {"server:\n  listen: ${A B}\n", "cfg.yaml:2: server.listen: malformed '${'"},
    {"server:\n  listen: ${1A}\n", "cfg.yaml:2: server.listen: malformed '${'"},
    {"server:\n  listen: ${A:x}\n", "cfg.yaml:2: server.listen: malformed '${'"},
    {"server:\n  listen: ${A:-${B}}\n",
     "cfg.yaml:2: server.listen: a ${NAME:-default} default cannot contain '${'"},
    {"providers:\n  p:\n    kind: ${YR_TEST_KIND}\n",
     "cfg.yaml:3: providers.p.kind: unknown kind (expected one of openai,"},

    /* YAML itself */
    {"server:\n  listen: [1\nstorage: {}\n", "cfg.yaml:3: syntax error: did not find expected "
                                             "',' or ']' (while parsing a flow sequence at line "
                                             "2)"},
    {"server:\n  listen: a: b\n",
     "cfg.yaml:2: syntax error: mapping values are not allowed in this context"},
    {"server:\n  workers: 1\n bad: 2\n", "cfg.yaml:3: syntax error: did not find expected key"},
    {"server: {}\n---\nmodels: []\n",
     "cfg.yaml:3: (top level): a config file holds one YAML document, found a second"},
    {"server: *nothing\n", "cfg.yaml:1: syntax error: found undefined alias"},
    {"server:\n  master_key: \"a\\0b\"\n",
     "cfg.yaml:2: server.master_key: contains a NUL character"},
    {"a: \"\x01\"\n", "cfg.yaml:1: syntax error: control characters are not allowed"},
    {"server:\n\n  log_level: \xff\n", "cfg.yaml:3: syntax error: invalid leading UTF-8 octet"},
};

static void test_rejects(void **state)
{
    (void)state;
    setenv("YR_TEST_KIND", "foo", 1);
    int bad = 0;
    for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
        char err[512] = "";
        yr_config_t *cfg = NULL;
        int rc = yr_config_load_string("cfg.yaml", rejects[i].yaml, strlen(rejects[i].yaml), &cfg,
                                       err, sizeof(err));
        if (rc >= 0 || cfg != NULL || strstr(err, rejects[i].expect) == NULL) {
            fprintf(stderr, "case %zu: rc=%d\n  got:    %s\n  wanted: %s\n", i, rc, err,
                    rejects[i].expect);
            bad++;
        }
        yr_config_free(cfg);
    }
    assert_int_equal(bad, 0);
}

/* A value that came from a secret setting or from any environment variable
 * never shows up in a message. */
static void test_secrets_not_shown(void **state)
{
    (void)state;
    char err[512];
    setenv("YR_TEST_SECRET", "s3cr3t with space", 1);

    static const struct {
        const char *yaml;
        const char *secret;
        const char *expect;
    } cases[] = {
        {"server:\n  master_key: hunter2 hunter3\n", "hunter",
         "cfg.yaml:2: server.master_key: must be printable ASCII without spaces or control "
         "characters"},
        {"server:\n  master_key: \"hunter2\\tx\"\n", "hunter", "server.master_key: must be"},
        {"server:\n  master_key: ${YR_TEST_SECRET}\n", "s3cr3t", "server.master_key: must be"},
        {"server:\n  master_key: [hunter2]\n", "hunter", "expected a scalar, got a sequence"},
        {"server:\n  master_key: hunter2${YR_TEST_UNSET}\n", "hunter",
         "environment variable 'YR_TEST_UNSET' is not set"},
        {"server:\n  master_key: hunter2${\n", "hunter", "unterminated '${'"},
        {"providers:\n  p:\n    kind: openai\n    api_key: 'sk-live abc'\n", "sk-live",
         "providers.p.api_key: must be printable"},
        {"storage:\n  url: 'mysql://root:topsecret@db/x'\n", "topsecret",
         "storage.url: unsupported scheme"},
        {"storage:\n  redis_url: 'redis://:topsecret@'\n", "topsecret", NULL},
        {"storage:\n  redis_url: 'http://:topsecret@x'\n", "topsecret", "must start with redis"},
        {"server:\n  listen: ${YR_TEST_SECRET}\n", "s3cr3t",
         "server.listen: invalid listen address: expected HOST:PORT"},
        {"server:\n  workers: ${YR_TEST_SECRET}\n", "s3cr3t",
         "server.workers: value is not a non-negative integer"},
        {"server:\n  log_level: ${YR_TEST_SECRET}\n", "s3cr3t",
         "server.log_level: unknown log_level (expected"},
        {"models:\n  - id: a\n    routes: [{provider: '${YR_TEST_SECRET}'}]\n", "s3cr3t",
         "models[0].routes[0].provider: no provider by that name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        yr_config_t *cfg = NULL;
        int rc = yr_config_load_string("cfg.yaml", cases[i].yaml, strlen(cases[i].yaml), &cfg, err,
                                       sizeof(err));
        if (cases[i].expect == NULL) { /* accepted: nothing to leak */
            assert_int_equal(rc, 0);
            yr_config_free(cfg);
            continue;
        }
        if (rc >= 0 || strstr(err, cases[i].expect) == NULL)
            fprintf(stderr, "case %zu: got: %s\n", i, err);
        assert_true(rc < 0);
        assert_non_null(strstr(err, cases[i].expect));
        assert_null(strstr(err, cases[i].secret));
    }
}

static void test_messages_are_bounded(void **state)
{
    (void)state;
    char err[48];
    load_fail("providers:\n  openai:\n    kind: a-very-long-unknown-kind-name-here\n", err,
              sizeof(err));
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_memory_equal(err, "cfg.yaml:3: providers.openai.kind: unknown kind", 47);

    /* No message buffer at all is fine too. */
    yr_config_t *cfg = NULL;
    assert_true(yr_config_load_string("x", "a: 1", 4, &cfg, NULL, 0) < 0);
    assert_null(cfg);

    /* Long and unprintable keys and values are cut and sanitised. */
    char big[4096];
    char msg[1024];
    int n = snprintf(big, sizeof(big), "server:\n  log_level: \"\\e");
    memset(big + n, 'x', 1000);
    snprintf(big + n + 1000, sizeof(big) - (size_t)n - 1000, "\"\n");
    load_fail(big, msg, sizeof(msg));
    char want[128];
    n = snprintf(want, sizeof(want), "cfg.yaml:2: server.log_level: unknown log_level '?");
    memset(want + n, 'x', 63); /* 64 characters shown, then "..." */
    snprintf(want + n + 63, sizeof(want) - (size_t)n - 63, "...' (expected");
    if (strstr(msg, want) == NULL)
        fprintf(stderr, "got: %s\n", msg);
    assert_non_null(strstr(msg, want));
}

/* The input need not be NUL-terminated, and the config copies what it keeps:
 * it outlives the input buffer (ASan checks the reads after free). */
static void test_config_owns_its_strings(void **state)
{
    (void)state;
    static const char text[] = "server: {listen: 'localhost:1', master_key: k}\n"
                               "providers: {p: {kind: gemini, api_key: a}}\n"
                               "models: [{id: m, routes: [{provider: p, model: u}]}]\nXXXX";
    size_t len = strlen(text) - 4;
    char *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, text, len);
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_load_string("s", copy, len, &cfg, err, sizeof(err)), 0);
    memset(copy, 'Z', len);
    free(copy);
    assert_string_equal(cfg->server.listen_host, "127.0.0.1");
    assert_string_equal(cfg->server.master_key, "k");
    assert_string_equal(cfg->providers[0].name, "p");
    assert_string_equal(cfg->providers[0].api_key, "a");
    assert_string_equal(cfg->providers[0].base_url, "https://generativelanguage.googleapis.com");
    assert_string_equal(cfg->models[0].id, "m");
    assert_string_equal(cfg->models[0].routes[0].model, "u");
    yr_config_free(cfg);
    yr_config_free(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/yr-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char text[] = "server:\n  listen: 127.0.0.1:0\n  workers: 300\n";
    assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
    close(fd);

    yr_config_t *cfg = NULL;
    char err[512];
    char want[128];
    assert_true(yr_config_load(path, &cfg, err, sizeof(err)) < 0);
    snprintf(want, sizeof(want), "%s:3: server.workers: value '300' is out of range (1..256)",
             path);
    assert_string_equal(err, want);

    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server:\n  listen: 127.0.0.1:0\n", f);
    fclose(f);
    assert_int_equal(yr_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->server.listen_port, 0);
    yr_config_free(cfg);
    unlink(path);

    assert_true(yr_config_load("/nonexistent/yr.yaml", &cfg, err, sizeof(err)) < 0);
    assert_null(cfg);
    assert_string_equal(err, "/nonexistent/yr.yaml: cannot open: No such file or directory");
    assert_true(yr_config_load("/tmp", &cfg, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/tmp: cannot read"));
}

static void test_default_no_env(void **state)
{
    (void)state;
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_default(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->path, "(defaults)");
    assert_string_equal(cfg->server.listen_host, "127.0.0.1");
    assert_int_equal(cfg->server.listen_port, 8080);
    assert_null(cfg->server.master_key);
    assert_string_equal(cfg->storage.url, "sqlite://yourouter.db");
    assert_string_equal(cfg->server.log_level, "info");
    assert_int_equal(cfg->server.max_body_bytes, 32u << 20);
    assert_int_equal(cfg->nproviders, 0);
    assert_int_equal(cfg->nmodels, 0);
    yr_config_free(cfg);
}

static void test_default_openai_only(void **state)
{
    (void)state;
    setenv("OPENAI_API_KEY", "sk-1", 1);
    setenv("ANTHROPIC_API_KEY", "", 1); /* empty counts as unset */
    setenv("YOUROUTER_MASTER_KEY", "", 1);
    setenv("YOUROUTER_LISTEN", "0.0.0.0:9000", 1);
    setenv("YOUROUTER_DB_URL", "sqlite::memory:", 1);
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_default(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->server.listen_host, "0.0.0.0");
    assert_int_equal(cfg->server.listen_port, 9000);
    assert_null(cfg->server.master_key);
    assert_string_equal(cfg->storage.url, "sqlite::memory:");
    assert_int_equal(cfg->nproviders, 1);
    assert_string_equal(cfg->providers[0].name, "openai");
    assert_int_equal(cfg->providers[0].kind, YR_KIND_OPENAI);
    assert_string_equal(cfg->providers[0].base_url, "https://api.openai.com/v1");
    assert_string_equal(cfg->providers[0].api_key, "sk-1");
    assert_int_equal(cfg->providers[0].timeout_ms, 600000);
    assert_int_equal(cfg->nmodels, 8);
    static const char *const ids[] = {"gpt-4o",       "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini",
                                      "gpt-4.1-nano", "o3",          "o3-mini", "o4-mini"};
    for (size_t i = 0; i < 8; i++) {
        const yr_model_conf_t *m = yr_config_model(cfg, yr_str(ids[i]));
        assert_non_null(m);
        assert_int_equal(m->index, i);
        assert_int_equal(m->nroutes, 1);
        assert_ptr_equal(m->routes[0].provider, &cfg->providers[0]);
        assert_string_equal(m->routes[0].model, ids[i]);
    }
    assert_null(yr_config_model(cfg, YR_STR("claude-3-5-haiku-latest")));
    yr_config_free(cfg);
}

static void test_default_all_vendors(void **state)
{
    (void)state;
    setenv("OPENAI_API_KEY", "sk-1", 1);
    setenv("ANTHROPIC_API_KEY", "sk-2", 1);
    setenv("GEMINI_API_KEY", "gm-3", 1);
    setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9999/", 1);
    setenv("YOUROUTER_MASTER_KEY", "yr-master", 1);
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_default(&cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg->server.master_key, "yr-master");
    assert_int_equal(cfg->nproviders, 3);
    const yr_provider_conf_t *an = yr_config_provider(cfg, YR_STR("anthropic"));
    const yr_provider_conf_t *gg = yr_config_provider(cfg, YR_STR("google"));
    assert_non_null(an);
    assert_non_null(gg);
    assert_int_equal(an->index, 1);
    assert_string_equal(an->base_url, "http://127.0.0.1:9999");
    assert_string_equal(an->api_key, "sk-2");
    assert_int_equal(gg->kind, YR_KIND_GEMINI);
    assert_string_equal(gg->base_url, "https://generativelanguage.googleapis.com");
    assert_int_equal(cfg->nmodels, 15);
    const yr_model_conf_t *m = yr_config_model(cfg, YR_STR("claude-sonnet-4-20250514"));
    assert_non_null(m);
    assert_ptr_equal(m->routes[0].provider, an);
    m = yr_config_model(cfg, YR_STR("gemini-2.0-flash"));
    assert_non_null(m);
    assert_ptr_equal(m->routes[0].provider, gg);
    for (size_t i = 0; i < cfg->nmodels; i++)
        assert_int_equal(cfg->models[i].index, i);
    yr_config_free(cfg);
}

static void test_default_base_url_without_key(void **state)
{
    (void)state;
    setenv("OPENAI_BASE_URL", "http://localhost:8000/v1", 1);
    setenv("GEMINI_API_KEY", "gm", 1);
    yr_config_t *cfg = NULL;
    char err[256];
    assert_int_equal(yr_config_default(&cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg->nproviders, 2);
    assert_string_equal(cfg->providers[0].name, "openai");
    assert_null(cfg->providers[0].api_key);
    assert_string_equal(cfg->providers[0].base_url, "http://localhost:8000/v1");
    assert_string_equal(cfg->providers[1].name, "google");
    assert_int_equal(cfg->providers[1].index, 1);
    assert_int_equal(cfg->nmodels, 8 + 3);
    yr_config_free(cfg);
}

static void test_default_bad_env(void **state)
{
    (void)state;
    static const struct {
        const char *var, *value, *expect;
    } cases[] = {
        {"YOUROUTER_LISTEN", "nohost",
         "(environment): YOUROUTER_LISTEN: invalid listen address: "
         "expected HOST:PORT"},
        {"YOUROUTER_LISTEN", "127.0.0.1:99999",
         "(environment): YOUROUTER_LISTEN: invalid listen "
         "address: port out of range (0..65535)"},
        {"OPENAI_BASE_URL", "api.openai.com",
         "(environment): OPENAI_BASE_URL: must start with "
         "http:// or https://"},
        {"OPENAI_API_KEY", "sk-secret\n", "(environment): OPENAI_API_KEY: must be printable"},
        {"YOUROUTER_MASTER_KEY", "my secret", "(environment): YOUROUTER_MASTER_KEY: must be"},
        {"YOUROUTER_DB_URL", "mysql://u:secret@h/d",
         "(environment): YOUROUTER_DB_URL: "
         "unsupported scheme"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear_env(NULL);
        setenv(cases[i].var, cases[i].value, 1);
        yr_config_t *cfg = (yr_config_t *)1;
        char err[256] = "";
        assert_true(yr_config_default(&cfg, err, sizeof(err)) < 0);
        assert_null(cfg);
        if (strstr(err, cases[i].expect) == NULL)
            fprintf(stderr, "case %zu: got: %s\n", i, err);
        assert_non_null(strstr(err, cases[i].expect));
        assert_null(strstr(err, "secret"));
    }
}

/* tls.ca_file: kept as given; a PEM block split across the reader's chunks
 * is still found; absent = NULL (the system store). */
static void test_tls_ca_file(void **state)
{
    (void)state;
    char path[] = "/tmp/yr-test-ca-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    for (int i = 0; i < 8190; i++)
        fputc('#', f); /* the marker straddles the first 8 KiB read */
    fputs("\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "providers:\n  a: {kind: openai, tls: {ca_file: '%s'}}\n  b: {kind: openai}\n"
             "  c: {kind: openai, tls: {}}\n  d: {kind: openai, tls: {http2: false}}\n",
             path);
    yr_config_t *cfg = load_ok(yaml);
    assert_string_equal(cfg->providers[0].tls_ca_file, path);
    assert_null(cfg->providers[1].tls_ca_file);
    assert_null(cfg->providers[2].tls_ca_file);
    /* HTTP/2 is offered unless turned off */
    assert_true(cfg->providers[0].tls_http2);
    assert_true(cfg->providers[1].tls_http2);
    assert_true(cfg->providers[2].tls_http2);
    assert_false(cfg->providers[3].tls_http2);
    yr_config_free(cfg);
    /* a regular file without a certificate block */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    snprintf(yaml, sizeof(yaml), "providers:\n  a:\n    kind: openai\n    tls: {ca_file: '%s'}\n",
             path);
    char err[512];
    load_fail(yaml, err, sizeof(err));
    assert_string_equal(err, "cfg.yaml:4: providers.a.tls.ca_file: the CA file has no PEM "
                             "certificate (-----BEGIN CERTIFICATE-----)");
    unlink(path);
}

/* kind azure: the API shape comes from api_version, default v1. */
static void test_azure_settings(void **state)
{
    (void)state;
    yr_config_t *cfg = load_ok("providers:\n"
                               "  az-v1: {kind: azure, base_url: 'https://a.openai.azure.com'}\n"
                               "  az-classic:\n"
                               "    kind: azure\n"
                               "    base_url: https://b.openai.azure.com/\n"
                               "    api_key: k\n"
                               "    api_version: 2024-10-21\n"
                               "  az-preview:\n"
                               "    kind: azure\n"
                               "    base_url: https://apim.example.com/aoai\n"
                               "    api_version: 2025-04-01-preview\n"
                               "  az-explicit: {kind: azure, base_url: 'http://127.0.0.1:1', "
                               "api_version: v1}\n"
                               "models:\n"
                               "  - id: gpt-4o\n"
                               "    routes: [{provider: az-classic, model: my-gpt4o-deployment}]\n");
    assert_int_equal(cfg->nproviders, 4);
    assert_string_equal(cfg->providers[0].api_version, "v1");
    assert_string_equal(cfg->providers[1].api_version, "2024-10-21");
    assert_string_equal(cfg->providers[1].base_url, "https://b.openai.azure.com");
    assert_string_equal(cfg->providers[1].api_key, "k");
    assert_string_equal(cfg->providers[2].api_version, "2025-04-01-preview");
    assert_string_equal(cfg->providers[2].base_url, "https://apim.example.com/aoai");
    assert_string_equal(cfg->providers[3].api_version, "v1");
    assert_string_equal(cfg->models[0].routes[0].model, "my-gpt4o-deployment");
    yr_config_free(cfg);
}

static void test_routing_settings(void **state)
{
    (void)state;
    yr_config_t *cfg = load_ok("providers:\n"
                               "  a: {kind: openai, api_key: key-a}\n"
                               "  b: {kind: anthropic}\n"
                               "models:\n"
                               "  - id: m\n"
                               "    strategy: least-latency\n"
                               "    retries: 2\n"
                               "    retry_on: [429, 529, connect]\n"
                               "    timeout_ms: 30000\n"
                               "    max_wait_ms: 0\n"
                               "    failure_threshold: 3\n"
                               "    cooldown_ms: 1000\n"
                               "    headroom: false\n"
                               "    routes:\n"
                               "      - {provider: a, weight: 5, max_concurrency: 10}\n"
                               "      - {provider: a, api_key: key-a2, price: {input: 1.5, output: '6'}}\n"
                               "      - {provider: b}\n"
                               "  - id: d\n"
                               "    routes: [{provider: b}]\n");
    const yr_model_conf_t *m = &cfg->models[0];
    assert_int_equal(m->strategy, YR_STRATEGY_LEAST_LATENCY);
    assert_string_equal(yr_strategy_name(m->strategy), "least-latency");
    assert_int_equal(m->retries, 2);
    assert_int_equal(m->retry_on, YR_RETRY_429 | YR_RETRY_529 | YR_RETRY_CONNECT);
    assert_int_equal(m->timeout_ms, 30000);
    assert_int_equal(m->max_wait_ms, 0);
    assert_int_equal(m->failure_threshold, 3);
    assert_int_equal(m->cooldown_ms, 1000);
    assert_false(m->headroom);
    assert_int_equal(m->routes[0].weight, 5);
    assert_int_equal(m->routes[0].max_concurrency, 10);
    assert_null(m->routes[0].api_key);
    assert_string_equal(yr_route_key(&m->routes[0]), "key-a");
    assert_string_equal(yr_route_key(&m->routes[1]), "key-a2"); /* two keys, two routes */
    assert_true(m->routes[1].has_price);
    assert_int_equal(m->routes[1].price_input, 1500000);
    assert_int_equal(m->routes[1].price_output, 6000000);
    assert_int_equal(m->routes[1].price_cache_read, 1500000); /* defaults to input */
    assert_false(m->routes[0].has_price);
    assert_null(yr_route_key(&m->routes[2]));
    /* the defaults */
    const yr_model_conf_t *d = &cfg->models[1];
    assert_int_equal(d->strategy, YR_STRATEGY_PRIORITY);
    assert_int_equal(d->retries, 0);
    assert_int_equal(d->retry_on, YR_RETRY_DEFAULT);
    assert_int_equal(d->timeout_ms, 600000);
    assert_int_equal(d->max_wait_ms, 2000);
    assert_int_equal(d->failure_threshold, 5);
    assert_int_equal(d->cooldown_ms, 5000);
    assert_true(d->headroom);
    assert_int_equal(d->routes[0].weight, 1);
    assert_int_equal(d->routes[0].max_concurrency, 0);
    yr_config_free(cfg);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(yr_provider_kind_name(YR_KIND_OPENAI), "openai");
    assert_string_equal(yr_provider_kind_name(YR_KIND_ANTHROPIC), "anthropic");
    assert_string_equal(yr_provider_kind_name(YR_KIND_GEMINI), "gemini");
    assert_string_equal(yr_provider_kind_name(YR_KIND_AZURE), "azure");
    assert_string_equal(yr_provider_kind_name(YR_KIND_BEDROCK), "bedrock");
    assert_string_equal(yr_provider_kind_name(YR_KIND_VERTEX), "vertex");
    assert_string_equal(yr_provider_kind_name(YR_KIND__COUNT), "unknown");
    /* Every kind name is accepted by the loader. */
    for (int k = 0; k < YR_KIND__COUNT; k++) {
        char yaml[160];
        snprintf(yaml, sizeof(yaml),
                 "providers: {p: {kind: %s, base_url: 'https://h', api_key: tok123, project: p%s}}",
                 yr_provider_kind_name((yr_provider_kind_t)k),
                 k == YR_KIND_BEDROCK ? ", region: us-east-1" : "");
        yr_config_t *cfg = load_ok(yaml);
        assert_int_equal(cfg->providers[0].kind, k);
        yr_config_free(cfg);
    }
}

/* ---- generations ---------------------------------------------------------- */

static const char gen_yaml[] = "server: {listen: '127.0.0.1:0', master_key: k1}\n"
                               "providers: {p: {kind: openai, base_url: 'http://127.0.0.1:1'}}\n"
                               "models: [{id: m1, routes: [{provider: p}]}]\n";

static void test_gen_last_release_frees(void **state)
{
    (void)state;
    yr_cfg_gen_t *gen = NULL;
    assert_int_equal(yr_cfg_gen_new(load_ok(gen_yaml), 7, &gen), 0);
    assert_int_equal(gen->number, 7);
    assert_int_equal(atomic_load(&gen->refs), 1);
    /* A worker and two requests pin it; the runtime lets go first. */
    yr_cfg_gen_t *worker = yr_cfg_gen_acquire(gen);
    yr_cfg_gen_t *r1 = yr_cfg_gen_acquire(worker);
    yr_cfg_gen_t *r2 = yr_cfg_gen_acquire(worker);
    assert_ptr_equal(r1, gen);
    assert_int_equal(atomic_load(&gen->refs), 4);
    yr_cfg_gen_release(gen);
    yr_cfg_gen_release(worker);
    /* Still readable by the requests (ASan reports a use after free if the
     * config went away early)... */
    assert_string_equal(r1->cfg->models[0].id, "m1");
    yr_cfg_gen_release(r1);
    assert_string_equal(r2->cfg->server.master_key, "k1");
    assert_int_equal(atomic_load(&r2->refs), 1);
    /* ...and the last release frees it (LeakSanitizer fails the test if not). */
    yr_cfg_gen_release(r2);
    yr_cfg_gen_release(NULL);
}

/* A request pins its worker's generation in its pool; the pool's end is the
 * request's release, and after a reload dropped every other reference it is
 * the one that frees the config. */
static void test_gen_pinned_by_pool(void **state)
{
    (void)state;
    yr_cfg_gen_t *gen = NULL;
    assert_int_equal(yr_cfg_gen_new(load_ok(gen_yaml), 1, &gen), 0);
    yr_pool_t *req = yr_pool_create(4096);
    assert_non_null(req);
    const yr_config_t *cfg = yr_cfg_gen_pin(gen, req);
    assert_ptr_equal(cfg, gen->cfg);
    assert_int_equal(atomic_load(&gen->refs), 2);
    yr_cfg_gen_release(gen); /* the reload: only the request holds it now */
    assert_string_equal(cfg->models[0].id, "m1");
    yr_pool_destroy(req); /* frees the config (LeakSanitizer checks) */
}

#define GEN_THREADS 4
#define GEN_ROUNDS 20000

static void *pin_and_drop(void *arg)
{
    yr_cfg_gen_t *gen = arg;
    for (int i = 0; i < GEN_ROUNDS; i++) {
        yr_cfg_gen_t *g = yr_cfg_gen_acquire(gen);
        if (g->cfg->nmodels != 1)
            abort();
        yr_cfg_gen_release(g);
    }
    yr_cfg_gen_release(gen); /* the reference the starter took for this thread */
    return NULL;
}

/* Workers pin and drop the same generation concurrently; the count must come
 * back exactly, so the owner's release is the one that frees. */
static void test_gen_concurrent_refs(void **state)
{
    (void)state;
    yr_cfg_gen_t *gen = NULL;
    assert_int_equal(yr_cfg_gen_new(load_ok(gen_yaml), 1, &gen), 0);
    pthread_t t[GEN_THREADS];
    for (int i = 0; i < GEN_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pin_and_drop, yr_cfg_gen_acquire(gen)), 0);
    for (int i = 0; i < GEN_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(atomic_load(&gen->refs), 1);
    yr_cfg_gen_release(gen);
}

typedef struct {
    const char *keys[8];
    size_t n;
} ignored_t;

static void on_ignored(const char *key, void *arg)
{
    ignored_t *ig = arg;
    assert_true(ig->n < 8);
    ig->keys[ig->n++] = key;
}

static void test_restart_settings_kept(void **state)
{
    (void)state;
    yr_config_t *running = load_ok("server: {listen: '127.0.0.1:0', workers: 2, master_key: k1,\n"
                                   "  max_body_bytes: 1m, idle_timeout_ms: 5000}\n"
                                   "storage: {url: 'sqlite://a.db', redis_url: 'redis://r1'}\n"
                                   "providers: {p: {kind: openai, base_url: 'http://h:1'}}\n"
                                   "models: [{id: m1, routes: [{provider: p}]}]\n");
    yr_config_t *next = load_ok("server: {listen: '127.0.0.1:9999', workers: 3, master_key: k2,\n"
                                "  max_body_bytes: 2m, idle_timeout_ms: 6000, log_level: warn}\n"
                                "storage: {url: 'sqlite://b.db'}\n"
                                "providers: {p: {kind: openai, base_url: 'http://h:2'}}\n"
                                "models: [{id: m2, routes: [{provider: p}]}]\n");
    ignored_t ig = {0};
    assert_int_equal(yr_config_keep_restart_settings(next, running, on_ignored, &ig), 0);
    /* Each changed setting once, in table order; the listen address is
     * reported once though host and port are two fields. */
    const char *want[] = {"server.listen",          "server.workers", "server.max_body_bytes",
                          "server.idle_timeout_ms", "storage.url",    "storage.redis_url"};
    assert_int_equal(ig.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < ig.n; i++)
        assert_string_equal(ig.keys[i], want[i]);
    /* The running values survive in next's own pool: free running first. */
    yr_config_free(running);
    assert_string_equal(next->server.listen_host, "127.0.0.1");
    assert_int_equal(next->server.listen_port, 0);
    assert_int_equal(next->server.workers, 2);
    assert_int_equal(next->server.max_body_bytes, 1024 * 1024);
    assert_int_equal(next->server.idle_timeout_ms, 5000);
    assert_string_equal(next->storage.url, "sqlite://a.db");
    assert_string_equal(next->storage.redis_url, "redis://r1");
    /* Everything else is the new file's. */
    assert_string_equal(next->server.master_key, "k2");
    assert_string_equal(next->server.log_level, "warn");
    assert_string_equal(next->providers[0].base_url, "http://h:2");
    assert_string_equal(next->models[0].id, "m2");

    /* Nothing changed: nothing reported. */
    yr_config_t *same = load_ok(gen_yaml), *again = load_ok(gen_yaml);
    ig.n = 0;
    assert_int_equal(yr_config_keep_restart_settings(again, same, on_ignored, &ig), 0);
    assert_int_equal(ig.n, 0);
    yr_config_free(same);
    yr_config_free(again);
    yr_config_free(next);
}

/* Upstream text that echoes a configured secret loses it (issue 8 #8). */
static void test_redact_secrets(void **state)
{
    (void)state;
    yr_config_t *cfg = load_ok("server:\n  master_key: mk-MASTER-0123456789\n"
                               "providers:\n  openai:\n    kind: openai\n"
                               "    base_url: http://127.0.0.1:1\n    api_key: sk-PROV-abcdef123456\n"
                               "models:\n  - id: m\n    routes:\n      - provider: openai\n"
                               "        api_key: sk-ROUTE-zyxwvu987654\n");
    char s[128];
    snprintf(s, sizeof(s), "bad key sk-PROV-abcdef123456, sk-ROUTE-zyxwvu987654 and "
                           "mk-MASTER-0123456789sk-PROV-abcdef123456!");
    yr_config_redact(cfg, s, sizeof(s));
    assert_string_equal(s, "bad key [redacted], [redacted] and [redacted][redacted]!");
    /* A short buffer is cut, never overrun, and never keeps half a key. */
    char t[16];
    snprintf(t, sizeof(t), "k=sk-PROV-abcde");
    yr_config_redact(cfg, t, sizeof(t));
    assert_string_equal(t, "k=sk-PROV-abcde"); /* not the whole key: left */
    char v[40] = "x mk-MASTER-0123456789 yyyyyyyyyyyyyyy";
    yr_config_redact(cfg, v, 14);
    assert_string_equal(v, "x [redacted] ");
    yr_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_spec_example, clear_env),
        cmocka_unit_test_setup(test_redact_secrets, clear_env),
        cmocka_unit_test_setup(test_defaults_applied, clear_env),
        cmocka_unit_test_setup(test_every_setting, clear_env),
        cmocka_unit_test_setup(test_anchors, clear_env),
        cmocka_unit_test_setup(test_rejects, clear_env),
        cmocka_unit_test_setup(test_tls_ca_file, clear_env),
        cmocka_unit_test_setup(test_azure_settings, clear_env),
        cmocka_unit_test_setup(test_routing_settings, clear_env),
        cmocka_unit_test_setup(test_secrets_not_shown, clear_env),
        cmocka_unit_test_setup(test_messages_are_bounded, clear_env),
        cmocka_unit_test_setup(test_config_owns_its_strings, clear_env),
        cmocka_unit_test_setup(test_load_file, clear_env),
        cmocka_unit_test_setup(test_default_no_env, clear_env),
        cmocka_unit_test_setup(test_default_openai_only, clear_env),
        cmocka_unit_test_setup(test_default_all_vendors, clear_env),
        cmocka_unit_test_setup(test_default_base_url_without_key, clear_env),
        cmocka_unit_test_setup(test_default_bad_env, clear_env),
        cmocka_unit_test_setup(test_kind_names, clear_env),
        cmocka_unit_test_setup(test_gen_last_release_frees, clear_env),
        cmocka_unit_test_setup(test_gen_pinned_by_pool, clear_env),
        cmocka_unit_test_setup(test_gen_concurrent_refs, clear_env),
        cmocka_unit_test_setup(test_restart_settings_kept, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
