/* libFuzzer target for the config loader: any bytes must either load or fail
 * with a bounded, NUL-terminated message, never crash or leak. A few
 * variables are set so that ${...} expansion has something to find. Build
 * and run from the repository root:
 *
 *   clang -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc
 *         tests/fuzz/fuzz_config.c src/config/config.c src/core/pool.c
 *         src/core/buf.c src/core/log.c -lyaml -o /tmp/fuzz_config
 *   /tmp/fuzz_config -max_total_time=30 CORPUS_DIR
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("YR_FUZZ_A", "openai", 1);
    setenv("YR_FUZZ_EMPTY", "", 1);
    setenv("YR_FUZZ_LISTEN", "127.0.0.1:0", 1);
    /* So that the SPEC §5 example, a natural seed, loads. */
    setenv("YOUROUTER_MASTER_KEY", "yr-fuzz", 0);
    setenv("OPENAI_API_KEY", "sk-fuzz", 0);
    setenv("ANTHROPIC_API_KEY", "sk-fuzz", 0);
    setenv("GEMINI_API_KEY", "sk-fuzz", 0);
    /* What the examples/ seeds read (corpus/config/). */
    setenv("OPENAI_API_KEY_2", "sk-fuzz-2", 0);
    setenv("YOUROUTER_PG_URL", "postgres://u:p@127.0.0.1/yr", 0);
    setenv("YOUROUTER_REDIS_URL", "redis://127.0.0.1:6379", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) /* quadratic duplicate checks are fine for configs, not for fuzzing */
        return 0;
    char err[256];
    memset(err, 'X', sizeof(err));
    yr_config_t *cfg = NULL;
    int rc = yr_config_load_string("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err));
    if (rc < 0) {
        if (cfg != NULL || memchr(err, '\0', sizeof(err)) == NULL)
            abort();
        return 0;
    }
    if (cfg == NULL)
        abort();
    /* Touch what a consumer would: every route must point at a provider. */
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const yr_model_conf_t *m = &cfg->models[i];
        if (m->nroutes == 0 || yr_config_model(cfg, yr_str(m->id)) != m)
            abort();
        for (size_t j = 0; j < m->nroutes; j++)
            if (m->routes[j].provider == NULL || m->routes[j].model == NULL ||
                yr_config_provider(cfg, yr_str(m->routes[j].provider->name)) !=
                    m->routes[j].provider)
                abort();
    }
    yr_config_free(cfg);
    return 0;
}
