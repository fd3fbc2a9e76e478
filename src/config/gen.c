/* Config generations and the settings a reload cannot change. */
#include "config/gen.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

int yr_cfg_gen_new(yr_config_t *cfg, uint64_t number, yr_cfg_gen_t **out)
{
    /* The generation lives in the config's own pool, so freeing the config
     * frees it too and nothing else needs to be allocated or freed. */
    yr_cfg_gen_t *gen = yr_pcalloc(cfg->pool, sizeof(*gen));
    if (gen == NULL) {
        yr_config_free(cfg);
        return -ENOMEM;
    }
    gen->cfg = cfg;
    gen->number = number;
    atomic_init(&gen->refs, 1);
    *out = gen;
    return 0;
}

yr_cfg_gen_t *yr_cfg_gen_acquire(yr_cfg_gen_t *gen)
{
    /* Relaxed is enough: the caller already holds a reference, so the
     * count cannot reach zero under us, and the config was published to
     * this thread before that reference was. */
    uint32_t prev = atomic_fetch_add_explicit(&gen->refs, 1, memory_order_relaxed);
    assert(prev > 0);
    (void)prev;
    return gen;
}

void yr_cfg_gen_release(yr_cfg_gen_t *gen)
{
    if (gen == NULL)
        return;
    /* Release orders this thread's reads of the config before the count
     * drops; acquire makes the thread that frees see every other thread's
     * reads finished. (acq_rel on every release rather than a fence after
     * the last one: ThreadSanitizer does not model fences.) */
    uint32_t prev = atomic_fetch_sub_explicit(&gen->refs, 1, memory_order_acq_rel);
    assert(prev > 0);
    if (prev != 1)
        return;
    yr_config_free(gen->cfg); /* gen itself is in that pool */
}

static void on_pool_unpin(void *gen)
{
    yr_cfg_gen_release(gen);
}

const yr_config_t *yr_cfg_gen_pin(yr_cfg_gen_t *gen, yr_pool_t *pool)
{
    if (yr_pool_cleanup_add(pool, on_pool_unpin, yr_cfg_gen_acquire(gen)) < 0) {
        yr_cfg_gen_release(gen);
        return NULL;
    }
    return gen->cfg;
}

/* ---- restart-only settings --------------------------------------------------- */

enum restart_type { R_STR, R_BOOL, R_U16, R_U32, R_U64 };

typedef struct {
    const char *key; /* rows of one setting share a key and are adjacent */
    size_t offset;
    enum restart_type type;
} restart_row_t;

#define CFG(field) offsetof(yr_config_t, field)

static const restart_row_t restart_only[] = {
    {"server.listen", CFG(server.listen_host), R_STR},
    {"server.listen", CFG(server.listen_port), R_U16},
    {"server.workers", CFG(server.workers), R_U32},
    {"server.max_body_bytes", CFG(server.max_body_bytes), R_U64},
    {"server.idle_timeout_ms", CFG(server.idle_timeout_ms), R_U32},
    {"server.linger_ms", CFG(server.linger_ms), R_U32},
    {"server.header_timeout_ms", CFG(server.header_timeout_ms), R_U32},
    {"server.body_timeout_ms", CFG(server.body_timeout_ms), R_U32},
    {"server.body_min_rate", CFG(server.body_min_rate), R_U64},
    {"server.max_connections", CFG(server.max_connections), R_U32},
    {"server.max_body_memory", CFG(server.max_body_memory), R_U64},
    {"storage.url", CFG(storage.url), R_STR},
    {"storage.redis_url", CFG(storage.redis_url), R_STR},
    {"observability.otlp_endpoint", CFG(observability.otlp_endpoint), R_STR},
    {"observability.otlp_timeout_ms", CFG(observability.otlp_timeout_ms), R_U32},
    {"observability.otlp_interval_ms", CFG(observability.otlp_interval_ms), R_U32},
    {"observability.otlp_queue", CFG(observability.otlp_queue), R_U32},
    {"observability.otlp_batch", CFG(observability.otlp_batch), R_U32},
    {"observability.service_name", CFG(observability.service_name), R_STR},
    {"observability.access_log", CFG(observability.access_log), R_STR},
    {"observability.metrics_key_names", CFG(observability.metrics_key_names), R_BOOL},
};

static bool str_differs(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a != b;
    return strcmp(a, b) != 0;
}

static int keep_bytes(char *dst, const char *src, size_t n)
{
    if (memcmp(dst, src, n) == 0)
        return 0;
    memcpy(dst, src, n);
    return 1;
}

/* Copies one field of running into next when they differ; returns 1 when it
 * did, 0 when they were equal, -ENOMEM. */
static int keep_field(yr_config_t *next, const yr_config_t *running, const restart_row_t *r)
{
    char *dst = (char *)next + r->offset;
    const char *src = (const char *)running + r->offset;
    switch (r->type) {
    case R_STR: {
        const char *old = *(const char *const *)src;
        if (!str_differs(*(const char **)dst, old))
            return 0;
        const char *copy = old ? yr_pstrndup(next->pool, old, strlen(old)) : NULL;
        if (old != NULL && copy == NULL)
            return -ENOMEM;
        *(const char **)dst = copy;
        return 1;
    }
    case R_BOOL: return keep_bytes(dst, src, sizeof(bool));
    case R_U16: return keep_bytes(dst, src, sizeof(uint16_t));
    case R_U32: return keep_bytes(dst, src, sizeof(uint32_t));
    case R_U64: return keep_bytes(dst, src, sizeof(uint64_t));
    }
    return 0;
}

int yr_config_keep_restart_settings(yr_config_t *next, const yr_config_t *running,
                                    yr_cfg_ignored_fn on_ignored, void *arg)
{
    const char *reported = NULL;
    for (size_t i = 0; i < sizeof(restart_only) / sizeof(restart_only[0]); i++) {
        const restart_row_t *r = &restart_only[i];
        int rc = keep_field(next, running, r);
        if (rc < 0)
            return rc;
        if (rc > 0 && reported != r->key) {
            reported = r->key;
            if (on_ignored != NULL)
                on_ignored(r->key, arg);
        }
    }
    return 0;
}
